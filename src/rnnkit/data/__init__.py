"""Readers for the data rnnkit trains on: text tables, UCR/UEA `.ts` files, `.npz` sequence sets."""
