"""Wire-faithful local broker simulators (Capital.com REST+WebSocket, IBKR TWS socket) for tests and demos."""
