"""Explanation methods and clustering strategies (siblings of ``metrics``; never import it)."""
