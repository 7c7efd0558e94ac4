{% macro clean_id(column) -%}
    {#- An identifier: text cleaned like clean_text, with invisible characters removed first,
        so an id made only of zero-width spaces, a BOM or no-break spaces is null (missing). -#}
    nullif(trim({{ segwise.strip_invisible(segwise.clean_text(column)) }}), '')
{%- endmacro %}
