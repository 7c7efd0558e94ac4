{% macro in_range(column, low, high) -%}
    {#- True when a number lies in [low, high]: false for NaN (every engine orders NaN above
        all numbers) and ±infinity, null for null. Staging casts only values for which this
        holds, so no value can make a cast fail; the rest go to quarantine. -#}
    ({{ column }} >= {{ low }} and {{ column }} <= {{ high }})
{%- endmacro %}
