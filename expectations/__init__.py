"""Great Expectations gates: landing and mart checks."""
