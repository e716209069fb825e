#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Hummingbird
import NIOCore
import Sandbox

/// The owner's actions: `POST /api/jobs/{id}/approve`, `…/reject` (the
/// code queue's review, state.yaml written as the client writes it),
/// `…/stop` and `…/restart` (srun's). Each needs the owner's token.
struct ReviewRoutes {
    let environment: APIEnvironment

    struct ReasonBody: Decodable {
        var reason: String?
    }

    func register(on router: Router<APIRequestContext>) {
        router.post("/api/jobs/:id/approve") { request, context in
            let (found, job) = try await syftBoxJob(context.parameters.require("id"), action: "approved")
            let reason = try await reason(request)
            try JobReview.approve(job, in: environment.layout, reason: reason)
            context.logger.info("approved through the API", metadata: ["job": "\(job)"])
            return try await answer(found, status: "approved")
        }
        router.post("/api/jobs/:id/reject") { request, context in
            let (found, job) = try await syftBoxJob(context.parameters.require("id"), action: "rejected")
            guard let reason = try await reason(request), !reason.isEmpty else {
                throw APIError(.unprocessableContent, "say why: {\"reason\": \"…\"} (the submitter sees it)")
            }
            try JobReview.reject(job, in: environment.layout, reason: reason)
            context.logger.info("rejected through the API", metadata: ["job": "\(job)"])
            return try await answer(found, status: "rejected")
        }
        router.post("/api/jobs/:id/stop") { _, context in
            let found = try await environment.catalog.find(context.parameters.require("id"))
            switch found.entry {
            case let .syftBox(job):
                try JobReview.cancel(job, in: environment.layout)
                context.logger.info("stopped through the API", metadata: ["job": "\(job)"])
            case .api:
                try await environment.service.stopAPIJob(found.id)
            }
            return try await answer(found, status: "stopping", code: .accepted)
        }
        router.post("/api/jobs/:id/restart") { _, context in
            let found = try await environment.catalog.find(context.parameters.require("id"))
            switch found.entry {
            case let .syftBox(job):
                try JobReview.rerun(job, in: environment.layout)
                context.logger.info("run again through the API", metadata: ["job": "\(job)"])
                return try await answer(found, status: "approved", code: .accepted)
            case .api:
                try await environment.service.restartAPIJob(found.id)
                return try await answer(found, status: "queued", code: .accepted)
            }
        }
    }

    private func syftBoxJob(_ id: String, action: String) async throws -> (JobCatalog.Found, InboxJob) {
        let found = try await environment.catalog.find(id)
        guard case let .syftBox(job) = found.entry else {
            throw APIError(.conflict, "a job submitted through the API is not reviewed; it runs when submitted")
        }
        return (found, job)
    }

    /// `{"reason": "…"}` in the body (optional), or `?reason=`.
    private func reason(_ request: Request) async throws -> String? {
        var request = request
        let body = try await request.collectBody(upTo: 64 << 10)
        if body.readableBytes > 0 {
            do {
                return try JSONDecoder().decode(ReasonBody.self, from: Data(body.readableBytesView)).reason
            } catch {
                throw APIError.badRequest("the body must be JSON: {\"reason\": \"…\"}")
            }
        }
        return request.text("reason")
    }

    private func answer(_ found: JobCatalog.Found, status: String, code: HTTPResponse.Status = .ok) async throws -> Response {
        let refreshed = (try? await environment.catalog.find(found.id)) ?? found
        return try JSONBody.response(
            JobActionJSON(jobID: found.id.rawValue, status: status,
                          job: try await environment.catalog.view(refreshed, detail: false)), status: code)
    }
}
