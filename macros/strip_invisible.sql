{% macro strip_invisible(expr) -%}
    {#- Every invisible character is non-ASCII: an ASCII-only text (nearly every id) skips
        the regular expression, which costs ten times the test at tens of millions of rows. -#}
    case when {{ segwise.has_non_ascii(expr) }}
        then {{ adapter.dispatch('strip_invisible', 'segwise')(expr) }}
        else {{ expr }}
    end
{%- endmacro %}

{#- True when the text holds a character outside ASCII: its length in bytes (UTF-8) is not
    its length in characters. -#}
{% macro has_non_ascii(expr) -%}
    {{ return(adapter.dispatch('has_non_ascii', 'segwise')(expr)) }}
{%- endmacro %}

{% macro default__has_non_ascii(expr) -%}
    strlen({{ expr }}) <> length({{ expr }})
{%- endmacro %}

{% macro postgres__has_non_ascii(expr) -%}
    octet_length({{ expr }}) <> char_length({{ expr }})
{%- endmacro %}

{% macro spark__has_non_ascii(expr) -%}
    octet_length({{ expr }}) <> char_length({{ expr }})
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
