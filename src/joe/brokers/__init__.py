"""Broker adapters. Nothing above this package imports a broker's own library."""
