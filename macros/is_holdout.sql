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
