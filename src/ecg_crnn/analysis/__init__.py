"""The study's analysis: the evaluations read back (results), the statistics (statistics), and every choice and
test of the comparison, computed once into one frozen result (compare) that the report only renders."""
