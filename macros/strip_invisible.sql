{% macro strip_invisible(expr) -%}
    {{ return(adapter.dispatch('strip_invisible', 'segwise')(expr)) }}
{%- endmacro %}

{#- Removes characters that print as nothing or as a blank: no-break and typographic spaces,
    zero-width and joiner characters, bidi marks and overrides, the BOM, Hangul fillers.
    One regular-expression class; engines spell a code point differently (RE2: \x{200B},
    PostgreSQL and Java: \u200B). -#}
{% macro invisible_class(style) -%}
    {%- set ranges = [['00A0'], ['00AD'], ['034F'], ['061C'], ['115F', '1160'], ['17B4', '17B5'],
                      ['180E'], ['2000', '200F'], ['202A', '202F'], ['205F', '206F'], ['3000'],
                      ['3164'], ['FEFF']] -%}
    {%- set out = [] -%}
    {%- for r in ranges -%}
        {%- set spelled = [] -%}
        {%- for p in r -%}
            {%- do spelled.append('\\x' ~ '{' ~ p ~ '}' if style == 're2' else '\\u' ~ p) -%}
        {%- endfor -%}
        {%- do out.append(spelled | join('-')) -%}
    {%- endfor -%}
    [{{ out | join('') }}]
{%- endmacro %}

{% macro default__strip_invisible(expr) -%}
    regexp_replace({{ expr }}, '{{ segwise.invisible_class('re2') }}', '', 'g')
{%- endmacro %}

{% macro postgres__strip_invisible(expr) -%}
    regexp_replace({{ expr }}, '{{ segwise.invisible_class('java') }}', '', 'g')
{%- endmacro %}

{% macro spark__strip_invisible(expr) -%}
    regexp_replace({{ expr }}, '{{ segwise.invisible_class('java') }}', '')
{%- endmacro %}
