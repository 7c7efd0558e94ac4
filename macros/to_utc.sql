{% macro to_utc(column) -%}
    {%- set tz = segwise.run_var('source_timezone', 'UTC') -%}
    {%- if tz in ('UTC', 'Etc/UTC', '') -%}
        cast({{ column }} as timestamp)
    {%- else -%}
        {{ return(adapter.dispatch('to_utc', 'segwise')(column, tz)) }}
    {%- endif -%}
{%- endmacro %}

{% macro default__to_utc(column, tz) -%}
    cast((cast({{ column }} as timestamp) at time zone '{{ tz }}') at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro spark__to_utc(column, tz) -%}
    to_utc_timestamp(cast({{ column }} as timestamp), '{{ tz }}')
{%- endmacro %}
