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
