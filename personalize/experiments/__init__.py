"""A/B tests of what a placement serves: assignment, statistics, the bandit, reports."""
