{% macro run_var(name, default=none) -%}
    {#- A per-run value (as-of date, membership stamp, source time zone, the segments a
        refresh rebuilds): the dbt var when one is passed (`dbt build --vars`, a unit
        test's overrides), else what segwise passes for this run in the environment
        variable SEGWISE_RUN_VARS (a JSON object), read only while executing. dbt parses
        the whole project again whenever --vars change, and records an env_var read at
        parse time; read at execution, a new as-of date or stamp costs no parse. -#}
    {%- set passed = var(name, none) -%}
    {%- if passed is not none -%}
        {{ return(passed) }}
    {%- endif -%}
    {%- if execute -%}
        {%- set run = fromjson(env_var('SEGWISE_RUN_VARS', '{}')) -%}
        {%- if run.get(name) is not none -%}
            {{ return(run[name]) }}
        {%- endif -%}
    {%- endif -%}
    {{ return(default) }}
{%- endmacro %}
