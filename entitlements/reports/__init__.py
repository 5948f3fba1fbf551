"""Reports: the notebooks' helpers and their rendering to self-contained HTML."""
