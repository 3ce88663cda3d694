"""Backtest: history replayed through the same analysis and paper-portfolio code as the live path."""
