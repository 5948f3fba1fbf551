"""Transform: the dbt project run against the warehouse, and its sources generated from the layouts."""
