"""lrtrain benchmarks: each case timed against its baseline in the same run (ratios only)."""
