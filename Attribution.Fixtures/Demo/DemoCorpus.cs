namespace Attribution.Demo;

/// <summary>The kinds of sentence in the demo corpus, each with a circuit that is easy to read.</summary>
public enum DemoTask
{
    CapitalEnglish,
    CapitalFrench,
    OppositeEnglish,
    OppositeFrench,
    Counting,
    Addition,
    NameCopy,
}

/// <summary>One task sentence: the prompt, the word that completes it, and the task it belongs to.</summary>
public sealed record DemoExample(DemoTask Task, string Prompt, string Answer)
{
    /// <summary>The whole sentence, as the corpus holds it.</summary>
    public string Text => Prompt + " " + Answer;
}

/// <summary>
/// The demo model's synthetic corpus: single sentences from small tables whose answers a reader
/// knows (capitals in English and French, opposites in both languages, counting, one-digit sums)
/// and a copying task (the name not repeated). The demo's byte-level BPE tokenizer is learned on
/// these sentences, so each of their words is one token.
/// </summary>
/// <remarks>
/// The tables are facts to be memorised, so the model is judged on all of them. Counting and name
/// copying are rules: a fifth of their combinations (start × length, ordered name pairs) never
/// appear in training and are the held-out prompts.
/// </remarks>
public static class DemoCorpus
{
    /// <summary>English name, French name with its article, English capital, French capital.</summary>
    public static readonly (string English, string French, string Capital, string Capitale)[] Countries =
    [
        ("France", "la France", "Paris", "Paris"), ("Germany", "l'Allemagne", "Berlin", "Berlin"),
        ("Italy", "l'Italie", "Rome", "Rome"), ("Spain", "l'Espagne", "Madrid", "Madrid"),
        ("Portugal", "le Portugal", "Lisbon", "Lisbonne"), ("England", "l'Angleterre", "London", "Londres"),
        ("Ireland", "l'Irlande", "Dublin", "Dublin"), ("Scotland", "l'Écosse", "Edinburgh", "Édimbourg"),
        ("Belgium", "la Belgique", "Brussels", "Bruxelles"), ("Austria", "l'Autriche", "Vienna", "Vienne"),
        ("Switzerland", "la Suisse", "Bern", "Berne"), ("Poland", "la Pologne", "Warsaw", "Varsovie"),
        ("Greece", "la Grèce", "Athens", "Athènes"), ("Russia", "la Russie", "Moscow", "Moscou"),
        ("Sweden", "la Suède", "Stockholm", "Stockholm"), ("Norway", "la Norvège", "Oslo", "Oslo"),
        ("Finland", "la Finlande", "Helsinki", "Helsinki"), ("Denmark", "le Danemark", "Copenhagen", "Copenhague"),
        ("Hungary", "la Hongrie", "Budapest", "Budapest"), ("Romania", "la Roumanie", "Bucharest", "Bucarest"),
        ("Bulgaria", "la Bulgarie", "Sofia", "Sofia"), ("Serbia", "la Serbie", "Belgrade", "Belgrade"),
        ("Croatia", "la Croatie", "Zagreb", "Zagreb"), ("Ukraine", "l'Ukraine", "Kyiv", "Kiev"),
        ("Turkey", "la Turquie", "Ankara", "Ankara"), ("Morocco", "le Maroc", "Rabat", "Rabat"),
        ("Algeria", "l'Algérie", "Algiers", "Alger"), ("Tunisia", "la Tunisie", "Tunis", "Tunis"),
        ("Kenya", "le Kenya", "Nairobi", "Nairobi"), ("Nigeria", "le Nigeria", "Abuja", "Abuja"),
        ("Ghana", "le Ghana", "Accra", "Accra"), ("Senegal", "le Sénégal", "Dakar", "Dakar"),
        ("Japan", "le Japon", "Tokyo", "Tokyo"), ("China", "la Chine", "Beijing", "Pékin"),
        ("Korea", "la Corée", "Seoul", "Séoul"), ("Thailand", "la Thaïlande", "Bangkok", "Bangkok"),
        ("Vietnam", "le Vietnam", "Hanoi", "Hanoï"), ("Indonesia", "l'Indonésie", "Jakarta", "Jakarta"),
        ("Iran", "l'Iran", "Tehran", "Téhéran"), ("Iraq", "l'Irak", "Baghdad", "Bagdad"),
        ("Syria", "la Syrie", "Damascus", "Damas"), ("Lebanon", "le Liban", "Beirut", "Beyrouth"),
        ("Canada", "le Canada", "Ottawa", "Ottawa"), ("Peru", "le Pérou", "Lima", "Lima"),
        ("Chile", "le Chili", "Santiago", "Santiago"), ("Colombia", "la Colombie", "Bogota", "Bogota"),
        ("Venezuela", "le Venezuela", "Caracas", "Caracas"), ("Brazil", "le Brésil", "Brasilia", "Brasilia"),
        ("Australia", "l'Australie", "Canberra", "Canberra"), ("Iceland", "l'Islande", "Reykjavik", "Reykjavik"),
        ("Czechia", "la Tchéquie", "Prague", "Prague"), ("Estonia", "l'Estonie", "Tallinn", "Tallinn"),
    ];

    /// <summary>Pairs of opposites in English and in French; each is asked both ways.</summary>
    public static readonly (string A, string B, string FrenchA, string FrenchB)[] Opposites =
    [
        ("hot", "cold", "chaud", "froid"), ("big", "small", "grand", "petit"), ("high", "low", "haut", "bas"),
        ("day", "night", "jour", "nuit"), ("black", "white", "noir", "blanc"), ("old", "young", "vieux", "jeune"),
        ("fast", "slow", "rapide", "lent"), ("good", "bad", "bon", "mauvais"), ("happy", "sad", "content", "triste"),
        ("light", "dark", "clair", "sombre"), ("early", "late", "tôt", "tard"), ("rich", "poor", "riche", "pauvre"),
        ("long", "short", "long", "court"), ("hard", "soft", "dur", "mou"), ("full", "empty", "plein", "vide"),
        ("strong", "weak", "fort", "faible"), ("wet", "dry", "mouillé", "sec"), ("left", "right", "gauche", "droite"),
        ("true", "false", "vrai", "faux"), ("win", "lose", "gagner", "perdre"),
    ];

    public static readonly string[] Names = ["Mary", "John", "Anna", "Tom", "Sarah", "James", "Emma", "David", "Lucy", "Peter", "Kate", "Paul"];

    public const int MaxNumber = 20;

    /// <summary>Every example of every task, with whether it is held out of training.</summary>
    public static IEnumerable<(DemoExample Example, bool HeldOut)> All()
    {
        foreach (var c in Countries)
        {
            yield return (new DemoExample(DemoTask.CapitalEnglish, $"The capital of {c.English} is", c.Capital), false);
            yield return (new DemoExample(DemoTask.CapitalFrench, $"La capitale {FrenchOf(c.French)} est", c.Capitale), false);
        }
        foreach (var o in Opposites)
        {
            foreach (var (a, b) in new[] { (o.A, o.B), (o.B, o.A) })
                yield return (new DemoExample(DemoTask.OppositeEnglish, $"The opposite of {a} is", b), false);
            foreach (var (a, b) in new[] { (o.FrenchA, o.FrenchB), (o.FrenchB, o.FrenchA) })
                yield return (new DemoExample(DemoTask.OppositeFrench, $"Le contraire de {a} est", b), false);
        }
        for (int a = 0; a <= 9; a++)
            for (int b = 0; b <= 9; b++)
                yield return (new DemoExample(DemoTask.Addition, $"{a} + {b} =", (a + b).ToString(System.Globalization.CultureInfo.InvariantCulture)), false);
        for (int start = 1; start < MaxNumber; start++)
            for (int length = 2; start + length <= MaxNumber && length <= 6; length++)
                yield return (new DemoExample(DemoTask.Counting, string.Join(' ', Enumerable.Range(start, length)), (start + length).ToString(System.Globalization.CultureInfo.InvariantCulture)),
                    HeldOutCombination(start * 31 + length));
        for (int i = 0; i < Names.Length; i++)
            for (int j = 0; j < Names.Length; j++)
                if (i != j)
                    yield return (new DemoExample(DemoTask.NameCopy, $"{Names[i]} and {Names[j]} went out . {Names[j]} gave it to", Names[i]),
                        HeldOutCombination(i * 17 + j));
    }

    /// <summary>"la France" → "de la France", "le Portugal" → "du Portugal", "l'Italie" → "de l'Italie".</summary>
    public static string FrenchOf(string withArticle) =>
        withArticle.StartsWith("le ", StringComparison.Ordinal) ? "du " + withArticle[3..] : "de " + withArticle;

    public static IReadOnlyList<DemoExample> Training() => [.. All().Where(e => !e.HeldOut).Select(e => e.Example)];

    public static IReadOnlyList<DemoExample> HeldOut() => [.. All().Where(e => e.HeldOut).Select(e => e.Example)];

    /// <summary>A fixed fifth of a rule task's combinations, spread over the table by a multiplicative hash.</summary>
    private static bool HeldOutCombination(int key) => (uint)(key * 2654435761u) % 5 == 0;
}
