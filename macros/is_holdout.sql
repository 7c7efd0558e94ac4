{% macro is_holdout(column, salt, pct) -%}
    {#- Deterministic control group: bucket = first 8 hex digits of md5(salt || ':' || id)
        as an integer, mod 10000; in the holdout when bucket < pct * 100. Reproducible in
        plain SQL on every engine and in Python:
        int(hashlib.md5(f"{salt}:{id}".encode()).hexdigest()[:8], 16) % 10000 < pct * 100 -#}
    {%- if pct | float <= 0 -%}
        false
    {%- else -%}
        {%- set salt_sql = "'" ~ (salt | replace("'", "''")) ~ ":'" -%}
        (mod({{ segwise.hex8_to_int("md5(" ~ dbt.concat([salt_sql, column]) ~ ")") }}, 10000) < {{ (pct | float * 100) | round(0) | int }})
    {%- endif -%}
{%- endmacro %}

{% macro is_universal_control(column) -%}
    {#- In the universal control group (var universal_control_pct of all customers, salt
        var universal_control_salt): kept out of every list. -#}
    {{ segwise.is_holdout(column, var('universal_control_salt'), var('universal_control_pct')) }}
{%- endmacro %}

{% macro variant_of(column, salt, variants) -%}
    {#- A/B/n assignment: the holdouts' bucket (md5 of salt:id, first 8 hex digits, mod
        10000) with salt '<salt>:variant', cut by the cumulative weights (percent) in the
        declared order — variants = [[name, weight], ...]. In Python: bucket as in
        is_holdout, the first variant whose cumulative weight * 100 exceeds it. -#}
    {%- set salt_sql = "'" ~ (salt | replace("'", "''")) ~ ":variant:'" -%}
    {%- set bucket = "mod(" ~ segwise.hex8_to_int("md5(" ~ dbt.concat([salt_sql, column]) ~ ")") ~ ", 10000)" -%}
    {%- set ns = namespace(cumulative=0) -%}
    case
        {%- for name, weight in variants %}
        {%- set ns.cumulative = ns.cumulative + weight %}
        {%- if not loop.last %}
        when {{ bucket }} < {{ ns.cumulative * 100 }} then '{{ name }}'
        {%- else %}
        else '{{ name }}'
        {%- endif %}
        {%- endfor %}
    end
{%- endmacro %}
