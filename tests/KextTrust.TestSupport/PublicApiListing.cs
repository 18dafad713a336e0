using System.Reflection;
using System.Text;

namespace KextTrust.TestSupport;

/// <summary>
/// The public surface of an assembly as text, one sorted line per exported type and per public or protected member
/// (constructors, methods, operators, properties with their accessors, fields and enum values, events): what
/// <c>tests/PublicApi/&lt;assembly&gt;.txt</c> pins. Compiler-made members with unspeakable names (a record's
/// <c>&lt;Clone&gt;$</c>) are left out; everything a caller can name is in.
/// </summary>
public static class PublicApiListing
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>The lines, sorted ordinally: types as <c>type NAME : KIND</c>, members as <c>  NAME.MEMBER…</c> after their type.</summary>
    public static IReadOnlyList<string> Lines(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        var lines = new List<string>();
        foreach (var type in assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            var name = Name(type);
            lines.Add($"type {name} : {Kind(type)}");
            var members = new List<string>();
            foreach (var m in type.GetMembers(Declared))
            {
                if (Member(type, m) is { } text)
                {
                    members.Add($"  {name}::{text}");
                }
            }
            members.Sort(StringComparer.Ordinal);
            lines.AddRange(members);
        }
        return lines;
    }

    /// <summary>How many exported types and public or protected members <see cref="Lines"/> lists.</summary>
    public static (int Types, int Members) Count(IReadOnlyList<string> lines) =>
        (lines.Count(l => l.StartsWith("type ", StringComparison.Ordinal)), lines.Count(l => l.StartsWith("  ", StringComparison.Ordinal)));

    private static bool Visible(MethodBase? m) => m is not null && (m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly);

    private static string? Member(Type type, MemberInfo m)
    {
        if (m.Name.StartsWith('<'))
        {
            return null;
        }
        switch (m)
        {
            case ConstructorInfo c when Visible(c):
                return $"{(c.IsStatic ? "static " : "")}.ctor({Parameters(c)})";
            case MethodInfo mi when Visible(mi) && (!mi.IsSpecialName || mi.Name.StartsWith("op_", StringComparison.Ordinal)):
                var generic = mi.IsGenericMethodDefinition ? "<" + string.Join(", ", mi.GetGenericArguments().Select(a => a.Name)) + ">" : "";
                return $"{Modifiers(mi)}{mi.Name}{generic}({Parameters(mi)}) : {Name(mi.ReturnType)}";
            case PropertyInfo p when Visible(p.GetMethod) || Visible(p.SetMethod):
                var accessors = (Visible(p.GetMethod) ? "get; " : "")
                    + (Visible(p.SetMethod) ? (p.SetMethod!.ReturnParameter.GetRequiredCustomModifiers().Any(t => t.Name == "IsExternalInit") ? "init; " : "set; ") : "");
                var indexer = p.GetIndexParameters() is { Length: > 0 } ix ? "[" + string.Join(", ", ix.Select(x => Name(x.ParameterType))) + "]" : "";
                return $"{Modifiers(p.GetMethod ?? p.SetMethod!)}{p.Name}{indexer} : {Name(p.PropertyType)} {{ {accessors}}}";
            case FieldInfo f when f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly:
                if (type.IsEnum)
                {
                    return f.IsSpecialName ? null : $"{f.Name} = {Convert.ToString(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture)}";
                }
                return $"{(f.IsLiteral ? "const " : f.IsStatic ? "static " : "")}{(f.IsInitOnly ? "readonly " : "")}{f.Name} : {Name(f.FieldType)}";
            case EventInfo e when Visible(e.AddMethod):
                return $"event {e.Name} : {Name(e.EventHandlerType!)}";
            default:
                return null;
        }
    }

    private static string Modifiers(MethodInfo m) =>
        (m.IsFamily || m.IsFamilyOrAssembly ? "protected " : "")
        + (m.IsStatic ? "static " : "")
        + (m.IsAbstract && !m.DeclaringType!.IsInterface ? "abstract " : "")
        + (m.IsVirtual && !m.IsAbstract && !m.IsFinal && m.GetBaseDefinition() == m ? "virtual " : "")
        + (m.IsVirtual && m.GetBaseDefinition() != m ? "override " : "");

    private static string Parameters(MethodBase m) => string.Join(", ", m.GetParameters().Select(p =>
        (p.IsOut ? "out " : p.ParameterType.IsByRef ? (p.IsIn ? "in " : "ref ") : "")
        + (p.GetCustomAttributesData().Any(a => a.AttributeType.Name == "ParamArrayAttribute") ? "params " : "")
        + (m.IsDefined(typeof(System.Runtime.CompilerServices.ExtensionAttribute)) && p.Position == 0 ? "this " : "")
        + Name(p.ParameterType.IsByRef ? p.ParameterType.GetElementType()! : p.ParameterType)
        + (p.HasDefaultValue ? " = …" : "")));

    private static string Kind(Type t) =>
        t.IsEnum ? (t.IsDefined(typeof(FlagsAttribute)) ? "flags enum" : "enum") + (Enum.GetUnderlyingType(t) == typeof(int) ? "" : " : " + Name(Enum.GetUnderlyingType(t)))
        : t.IsInterface ? "interface"
        : t.IsValueType ? (t.GetMethod("<Clone>$") is not null || t.GetProperty("EqualityContract", Declared) is not null ? "record struct" : "struct")
        : typeof(Delegate).IsAssignableFrom(t) ? "delegate"
        : (t.IsAbstract && t.IsSealed ? "static " : t.IsAbstract ? "abstract " : t.IsSealed ? "sealed " : "")
            + (t.GetMethod("<Clone>$") is not null ? "record" : "class")
            + (t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) ? " : " + Name(b) : "");

    /// <summary>A C#-like name: keyword aliases, generic arguments in angle brackets, nested types joined with a dot.</summary>
    public static string Name(Type t)
    {
        if (t.IsArray)
        {
            return Name(t.GetElementType()!) + "[" + new string(',', t.GetArrayRank() - 1) + "]";
        }
        if (t.IsPointer)
        {
            return Name(t.GetElementType()!) + "*";
        }
        if (t.IsGenericParameter)
        {
            return t.Name;
        }
        if (Nullable.GetUnderlyingType(t) is { } inner)
        {
            return Name(inner) + "?";
        }
        var alias = Type.GetTypeCode(t) switch
        {
            TypeCode.Boolean => "bool", TypeCode.Byte => "byte", TypeCode.SByte => "sbyte", TypeCode.Char => "char",
            TypeCode.Int16 => "short", TypeCode.UInt16 => "ushort", TypeCode.Int32 => "int", TypeCode.UInt32 => "uint",
            TypeCode.Int64 => "long", TypeCode.UInt64 => "ulong", TypeCode.Single => "float", TypeCode.Double => "double",
            TypeCode.Decimal => "decimal", TypeCode.String => "string", _ => null,
        };
        if (alias is not null && !t.IsEnum)
        {
            return alias;
        }
        if (t == typeof(object))
        {
            return "object";
        }
        if (t == typeof(void))
        {
            return "void";
        }
        var sb = new StringBuilder();
        if (t.IsNested && !t.IsGenericParameter)
        {
            sb.Append(Name(t.DeclaringType!)).Append('.');
        }
        else if (t.Namespace is { Length: > 0 } ns)
        {
            sb.Append(ns).Append('.');
        }
        var simple = t.Name;
        var tick = simple.IndexOf('`', StringComparison.Ordinal);
        sb.Append(tick >= 0 ? simple[..tick] : simple);
        if (t.IsGenericType)
        {
            var args = t.GetGenericArguments();
            var own = t.IsNested ? args.Skip(t.DeclaringType!.GetGenericArguments().Length) : args;
            var list = own.ToArray();
            if (list.Length > 0)
            {
                sb.Append('<').Append(string.Join(", ", list.Select(Name))).Append('>');
            }
        }
        return sb.ToString();
    }
}
