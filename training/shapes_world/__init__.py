"""The shapes world: a seeded, captioned image world where entity names can be explained by their looks."""
