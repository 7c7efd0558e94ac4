{#- Interval and test statistics in plain SQL (sqrt, exp, ln, abs only), identical on every
    engine, so the measurement marts compute lift where BI reads it. Every formula takes
    column names or simple expressions (they are repeated inline). z = 1.959964 (95 %,
    two-sided); the tests check each against scipy / statsmodels. -#}

{% macro z_95() -%}1.959963984540054{%- endmacro %}

{% macro erfc_abs(a) -%}
    {#- erfc(|a|) by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7), in Horner form
        over t = 1 / (1 + 0.3275911 |a|). -#}
    {%- set t = '(1.0 / (1.0 + 0.3275911 * abs(' ~ a ~ ')))' -%}
    (((((1.061405429 * {{ t }} - 1.453152027) * {{ t }} + 1.421413741) * {{ t }}
        - 0.284496736) * {{ t }} + 0.254829592) * {{ t }}) * exp(-({{ a }}) * ({{ a }}))
{%- endmacro %}

{% macro two_sided_p_normal(z) -%}
    {#- P(|Z| >= |z|) for a standard normal Z: erfc(|z| / sqrt 2). -#}
    {{ segwise.erfc_abs('(' ~ z ~ ') / 1.4142135623730951') }}
{%- endmacro %}

{% macro two_sided_p_t(t, df) -%}
    {#- P(|T| >= |t|) for Student's t with df degrees of freedom, through the normal
        approximation z = t (1 - 1/(4 df)) / sqrt(1 + t^2 / (2 df)) (Abramowitz & Stegun
        26.7.8; within 1e-3 of the exact value for df >= 30). -#}
    {{ segwise.two_sided_p_normal('(' ~ t ~ ') * (1.0 - 1.0 / (4.0 * (' ~ df ~ '))) / sqrt(1.0 + (' ~ t ~ ') * (' ~ t ~ ') / (2.0 * (' ~ df ~ ')))') }}
{%- endmacro %}

{% macro t_975(df) -%}
    {#- The 97.5 % quantile of Student's t with df degrees of freedom: the Cornish-Fisher
        expansion around z (four terms; within 1e-3 of the exact value for df >= 5). -#}
    {%- set z = 1.959963984540054 -%}
    {%- set g1 = (z ** 3 + z) / 4 -%}
    {%- set g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96 -%}
    {%- set g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384 -%}
    {%- set g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160 -%}
    ({{ z }} + {{ g1 }} / ({{ df }}) + {{ g2 }} / (({{ df }}) * ({{ df }}))
        + {{ g3 }} / (({{ df }}) * ({{ df }}) * ({{ df }}))
        + {{ g4 }} / (({{ df }}) * ({{ df }}) * ({{ df }}) * ({{ df }})))
{%- endmacro %}

{% macro wilson_bound(k, n, side) -%}
    {#- Wilson score interval bound (side -1: lower, +1: upper) for k successes of n. -#}
    {%- set z = segwise.z_95() -%}
    case when ({{ n }}) > 0 then
        ((1.0 * ({{ k }}) / ({{ n }}) + {{ z }} * {{ z }} / (2.0 * ({{ n }})))
         {{ '-' if side < 0 else '+' }} {{ z }} * sqrt((1.0 * ({{ k }}) / ({{ n }})) * (1.0 - 1.0 * ({{ k }}) / ({{ n }})) / ({{ n }})
                  + {{ z }} * {{ z }} / (4.0 * ({{ n }}) * ({{ n }}))))
        / (1.0 + {{ z }} * {{ z }} / ({{ n }}))
    end
{%- endmacro %}

{% macro welch_df(v1, n1, v2, n2) -%}
    {#- Welch-Satterthwaite degrees of freedom of a difference of two means. -#}
    case when ({{ v1 }}) / ({{ n1 }}) + ({{ v2 }}) / ({{ n2 }}) > 0 then
        (({{ v1 }}) / ({{ n1 }}) + ({{ v2 }}) / ({{ n2 }})) * (({{ v1 }}) / ({{ n1 }}) + ({{ v2 }}) / ({{ n2 }}))
        / ((({{ v1 }}) / ({{ n1 }})) * (({{ v1 }}) / ({{ n1 }})) / (({{ n1 }}) - 1)
           + (({{ v2 }}) / ({{ n2 }})) * (({{ v2 }}) / ({{ n2 }})) / (({{ n2 }}) - 1))
    end
{%- endmacro %}
