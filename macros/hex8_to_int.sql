{% macro hex8_to_int(hex_expr) -%}
    {{ return(adapter.dispatch('hex8_to_int', 'segwise')(hex_expr)) }}
{%- endmacro %}

{# The first 8 hex digits of a hex string as a non-negative integer. #}
{% macro default__hex8_to_int(hex_expr) -%}
    cast(('0x' || substr({{ hex_expr }}, 1, 8)) as bigint)
{%- endmacro %}

{% macro postgres__hex8_to_int(hex_expr) -%}
    (('x' || lpad(substr({{ hex_expr }}, 1, 8), 16, '0'))::bit(64)::bigint)
{%- endmacro %}

{% macro spark__hex8_to_int(hex_expr) -%}
    cast(conv(substr({{ hex_expr }}, 1, 8), 16, 10) as bigint)
{%- endmacro %}
