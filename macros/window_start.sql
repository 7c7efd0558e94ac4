{% macro window_start(datepart, amount) -%}
    {{ dbt.dateadd(datepart, -1 * amount, segwise.as_of_ts()) }}
{%- endmacro %}
