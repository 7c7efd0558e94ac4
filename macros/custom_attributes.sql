{% macro custom_attributes() -%}
    {#- The declared custom contact attributes (var custom_attributes), checked: name ->
        {type, description}. A name must be a lower-case identifier (it becomes a column
        of customer_attributes and a segment trait); a type is text, number or boolean.
        segwise.attributes reads and checks the same declaration in Python. -#}
    {%- set declared = var('custom_attributes', {}) or {} -%}
    {%- if declared is not mapping -%}
        {{ exceptions.raise_compiler_error("var custom_attributes must map attribute names to types, got " ~ declared) }}
    {%- endif -%}
    {%- set out = {} -%}
    {%- for name, spec in declared.items() -%}
        {%- set spec = {'type': spec} if spec is string else spec -%}
        {%- if not modules.re.match('^[a-z][a-z0-9_]{0,62}$', name | string) -%}
            {{ exceptions.raise_compiler_error("custom attribute " ~ name ~ ": a name is a lower-case identifier (letters, digits, _)") }}
        {%- endif -%}
        {%- if spec is not mapping or spec.get('type') not in ('text', 'number', 'boolean') -%}
            {{ exceptions.raise_compiler_error("custom attribute " ~ name ~ ": type must be text, number or boolean, got " ~ spec) }}
        {%- endif -%}
        {%- do out.update({name: {'type': spec['type'], 'description': spec.get('description', '')}}) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}

{% macro number_pattern() -%}
    {#- A decimal number without exponent (at most 30 characters are accepted): every value
        it matches casts to double precision on every engine. -#}
    ^[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)$
{%- endmacro %}

{% macro boolean_spellings(value) -%}
    {{ return({'true': ['true', 't', 'yes', 'y', '1'], 'false': ['false', 'f', 'no', 'n', '0']}[value]) }}
{%- endmacro %}

{% macro type_double() -%}
    {#- An 8-byte float (dbt.type_float() is a 4-byte float on DuckDB). -#}
    {{ return(adapter.dispatch('type_double', 'segwise')()) }}
{%- endmacro %}

{% macro default__type_double() -%}double precision{%- endmacro %}

{% macro spark__type_double() -%}double{%- endmacro %}
