"""Measurement: what segments and campaigns do — imported experiments (segwise experiments
import), and the dbt measurement marts that compute lift with intervals."""
