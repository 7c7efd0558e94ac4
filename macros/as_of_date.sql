{% macro as_of_date() -%}
    {%- set d = segwise.run_var('as_of_date') -%}
    {%- if d is none or d == '' -%}
        cast('{{ run_started_at.strftime("%Y-%m-%d") }}' as date)
    {%- else -%}
        cast('{{ d }}' as date)
    {%- endif -%}
{%- endmacro %}
