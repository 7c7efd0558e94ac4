{% macro as_of_ts() -%}
    {%- set d = segwise.run_var('as_of_date') -%}
    {%- if d is none or d == '' -%}
        {{ run_started_ts() }}
    {%- else -%}
        {{ dbt.dateadd('day', 1, "cast('" ~ d ~ "' as timestamp)") }}
    {%- endif -%}
{%- endmacro %}
