"""Affinity rules: the pure judgement (`rules`) and the rules and facts read from the inventory (`store`)."""
