"""Passes over the graph IR: costs, memory and receptive fields."""
