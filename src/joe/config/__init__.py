"""Configuration: settings from the environment, `config/execution.yaml`, and the one switch (TRADING_MODE).

Import-light on purpose: import from the submodules (`joe.config.settings`, `joe.config.loader`,
`joe.config.mode`, `joe.config.schema`).
"""
