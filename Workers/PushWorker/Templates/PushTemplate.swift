import Liquid

/// A compiled push template (`Templates/push/<name>/`): its metadata and its parts.
public struct PushTemplate: Sendable {
    public var name: String
    public var metadata: PushTemplateMetadata
    /// `title.liquid` (required for an alert push).
    public var title: LiquidTemplate?
    public var subtitle: LiquidTemplate?
    /// `body.liquid` (required for an alert push).
    public var body: LiquidTemplate?
    /// `image.liquid`: an https URL of an image (FCM `notification.image`, APNs `image` with a service extension).
    public var image: LiquidTemplate?
    /// `link.liquid`: the deep link opened on tap (`link` in the custom data of both services).
    public var link: LiquidTemplate?
    /// `data.liquid`: a JSON object of custom data (values become strings: FCM's data map holds strings).
    public var data: LiquidTemplate?
}
