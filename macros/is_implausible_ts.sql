{% macro is_implausible_ts(column) -%}
    {#- Before var('min_plausible_date') (-infinity included): no real event of a customer
        happened then. Future timestamps are is_future's concern. -#}
    {{ column }} < cast('{{ var("min_plausible_date") }}' as timestamp)
{%- endmacro %}
