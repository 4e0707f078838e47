"""Small image classifier on scikit-learn's bundled 8x8 digits; metric: val cross-entropy."""
