"""Figures and pages made from run directories (matplotlib is imported lazily)."""
