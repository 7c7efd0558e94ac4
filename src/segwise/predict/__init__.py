"""Predictive and discovered segments: churn propensity, BG/NBD + Gamma-Gamma lifetime
value, clusters with stable ids — scored between the marts and the segment views
(``segwise.predict.score``), written to the ``predictions`` schema, read back by
``marts.customer_profile`` as traits."""
