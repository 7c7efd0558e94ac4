{% macro sha256_hex(expr) -%}
    {{ return(adapter.dispatch('sha256_hex', 'segwise')(expr)) }}
{%- endmacro %}

{#- SHA-256 of a text as 64 lower-case hex digits (hashlib.sha256(x.encode()).hexdigest()). -#}
{% macro default__sha256_hex(expr) -%}
    sha256({{ expr }})
{%- endmacro %}

{% macro postgres__sha256_hex(expr) -%}
    encode(sha256(convert_to({{ expr }}, 'UTF8')), 'hex')
{%- endmacro %}

{% macro spark__sha256_hex(expr) -%}
    sha2({{ expr }}, 256)
{%- endmacro %}
