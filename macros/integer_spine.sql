{% macro integer_spine(digits=3) -%}
    {#- A relation of integers 0 … 10^digits - 1 in column `n`, from cross-joined digit
        lists: plain SQL on every engine (no generate_series). -#}
    select
        {%- for i in range(digits) %}
        d{{ i }}.d * {{ 10 ** i }}{{ ' +' if not loop.last }}
        {%- endfor %} as n
    from
        {%- for i in range(digits) %}
        (select 0 as d{% for v in range(1, 10) %} union all select {{ v }}{% endfor %}) as d{{ i }}{{ ',' if not loop.last }}
        {%- endfor %}
{%- endmacro %}
