"""Quality gates: Great Expectations suites over landed files and marts, results in audit.dq_results."""
