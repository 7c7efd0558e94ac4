{% macro as_of_ts() -%}
    {%- set d = var('as_of_date', none) -%}
    {%- if d is none or d == '' -%}
        {{ run_started_ts() }}
    {%- else -%}
        {{ dbt.dateadd('day', 1, "cast('" ~ d ~ "' as timestamp)") }}
    {%- endif -%}
{%- endmacro %}
