"""The study: train the zoo on real images, measure every model, save results for the report."""
