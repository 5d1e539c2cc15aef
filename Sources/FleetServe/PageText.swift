/// The words of the pages people see, in English, German and French (the person's `locale` trait picks; English
/// otherwise), as the templates do.
struct PageText: Sendable {
    let lang: String
    let unsubscribeTitle: String
    let unsubscribeQuestion: String
    let unsubscribeButton: String
    let unsubscribed: String
    let preferencesLink: String
    let preferencesTitle: String
    let preferencesIntro: String
    let save: String
    let unsubscribeAll: String
    let saved: String
    let invalid: String
    let tooMany: String

    static func forLocale(_ locale: String?) -> PageText {
        switch locale?.prefix(2).lowercased() {
        case "de": de
        case "fr": fr
        default: en
        }
    }

    static let en = PageText(
        lang: "en", unsubscribeTitle: "Unsubscribe", unsubscribeQuestion: "Stop receiving emails of this list:",
        unsubscribeButton: "Unsubscribe", unsubscribed: "You are unsubscribed. You will not receive emails of this list any more.",
        preferencesLink: "Choose what you receive", preferencesTitle: "Your email preferences",
        preferencesIntro: "Tick the emails you want to receive.", save: "Save", unsubscribeAll: "Unsubscribe from all",
        saved: "Your preferences are saved.", invalid: "This link is not valid.", tooMany: "Too many requests. Please try again shortly.")
    static let de = PageText(
        lang: "de", unsubscribeTitle: "Abmelden", unsubscribeQuestion: "Keine E-Mails dieser Liste mehr erhalten:",
        unsubscribeButton: "Abmelden", unsubscribed: "Sie sind abgemeldet. Sie erhalten keine E-Mails dieser Liste mehr.",
        preferencesLink: "Auswählen, was Sie erhalten", preferencesTitle: "Ihre E-Mail-Einstellungen",
        preferencesIntro: "Wählen Sie die E-Mails, die Sie erhalten möchten.", save: "Speichern", unsubscribeAll: "Von allen abmelden",
        saved: "Ihre Einstellungen sind gespeichert.", invalid: "Dieser Link ist nicht gültig.", tooMany: "Zu viele Anfragen. Bitte versuchen Sie es gleich noch einmal.")
    static let fr = PageText(
        lang: "fr", unsubscribeTitle: "Se désabonner", unsubscribeQuestion: "Ne plus recevoir les e-mails de cette liste :",
        unsubscribeButton: "Se désabonner", unsubscribed: "Vous êtes désabonné·e. Vous ne recevrez plus les e-mails de cette liste.",
        preferencesLink: "Choisir ce que vous recevez", preferencesTitle: "Vos préférences e-mail",
        preferencesIntro: "Cochez les e-mails que vous souhaitez recevoir.", save: "Enregistrer", unsubscribeAll: "Se désabonner de tout",
        saved: "Vos préférences sont enregistrées.", invalid: "Ce lien n’est pas valide.", tooMany: "Trop de requêtes. Veuillez réessayer dans un instant.")
}
