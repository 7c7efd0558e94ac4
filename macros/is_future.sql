{% macro is_future(column) -%}
    {{ column }} > {{ dbt.dateadd('hour', var('future_tolerance_hours'), segwise.run_started_ts()) }}
{%- endmacro %}
