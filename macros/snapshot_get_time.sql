{% macro membership_stamp() -%}
    {#- The time this build stamps on membership periods (segment_membership_snapshot) and
        reads its changes by (segment_changes): the run's membership_stamp (run_var), which segwise sets
        to the build's as-of time (the end of the as-of day, or the run's start without
        one), made strictly later than the snapshot's previous stamp (a re-run of the same
        day, or a backfill of an earlier one, is stamped a second after the last stamp), so
        the history is in the data's time and periods never run backwards. A plain
        `dbt build` (no var) stamps the run's start, as dbt does. -#}
    {%- set stamp = segwise.run_var('membership_stamp') -%}
    {%- if stamp -%}
        cast('{{ stamp }}' as timestamp)
    {%- else -%}
        {{ segwise.run_started_ts() }}
    {%- endif -%}
{%- endmacro %}

{% macro snapshot_get_time() -%}
    {#- Overrides dbt's: snapshots stamp segwise.membership_stamp(). -#}
    {{ segwise.membership_stamp() }}
{%- endmacro %}
