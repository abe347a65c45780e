"""Downstream analyses of fitted models (revenue OLS on personas)."""
