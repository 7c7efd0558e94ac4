{% macro full_match(column, pattern) -%}
    {{ return(adapter.dispatch('full_match', 'segwise')(column, pattern)) }}
{%- endmacro %}

{% macro default__full_match(column, pattern) -%}
    regexp_full_match({{ column }}, '{{ pattern }}')
{%- endmacro %}

{% macro postgres__full_match(column, pattern) -%}
    ({{ column }} ~ '{{ pattern }}')
{%- endmacro %}

{% macro spark__full_match(column, pattern) -%}
    ({{ column }} rlike '{{ pattern }}')
{%- endmacro %}
