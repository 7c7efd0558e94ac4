{% macro is_valid_email(column) -%}
    {{ return(adapter.dispatch('is_valid_email', 'segwise')(column)) }}
{%- endmacro %}

{# One pattern for every engine: local@domain.tld, no spaces, one @. #}
{% macro email_pattern() -%}
    ^[A-Za-z0-9._%+''-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$
{%- endmacro %}

{% macro default__is_valid_email(column) -%}
    regexp_matches({{ column }}, '{{ segwise.email_pattern() }}')
{%- endmacro %}

{% macro postgres__is_valid_email(column) -%}
    ({{ column }} ~ '{{ segwise.email_pattern() }}')
{%- endmacro %}

{% macro spark__is_valid_email(column) -%}
    ({{ column }} rlike '{{ segwise.email_pattern() }}')
{%- endmacro %}
