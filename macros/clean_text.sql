{% macro clean_text(column) -%}
    nullif(trim(replace(replace(replace(cast({{ column }} as {{ dbt.type_string() }}), chr(9), ' '), chr(10), ' '), chr(13), ' ')), '')
{%- endmacro %}
