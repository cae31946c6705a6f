"""Model selection: complexity, candidates, priors, health, the ranking table and the selector."""
