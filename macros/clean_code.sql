{% macro clean_code(column) -%}
    lower({{ segwise.clean_text(column) }})
{%- endmacro %}
