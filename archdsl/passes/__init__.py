"""Passes over the graph IR: costs, memory, receptive fields, initialisation."""
