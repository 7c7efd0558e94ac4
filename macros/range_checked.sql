{% macro range_checked(column, low, high, type) -%}
    {#- Two select items for a raw number: the value cast to `type` when it lies in
        [low, high] (else null), and `_is_<column>_invalid`, true when a value was given
        but lies outside (NaN and ±infinity included). The cast never sees a value that
        could make it fail; the base model quarantines invalid rows with a reason. -#}
    case
            when {{ segwise.in_range(column, low, high) }} then cast({{ column }} as {{ type }})
        end as {{ column }},
        coalesce(not {{ segwise.in_range(column, low, high) }}, false) as _is_{{ column }}_invalid
{%- endmacro %}
