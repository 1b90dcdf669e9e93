"""REST endpoints for accounts: who am I (lets an integration check its token)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.permissions import IsApproved, signed_in_user
from accounts.selectors import sender_grants_for


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Your user id (e.g. `user` when an admin creates a sender)")
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    role = serializers.ChoiceField(choices=User.Role.choices)
    senders = serializers.ListField(child=serializers.CharField(), help_text="Numbers you may send from")


class MeApi(APIView):
    """The authenticated user, their role and the numbers they may send from."""

    permission_classes = [IsApproved]

    @extend_schema(operation_id="v1_accounts_me_retrieve", summary="Who am I", responses=MeSerializer)
    def get(self, request: Request) -> Response:
        user = signed_in_user(request)  # IsApproved let only a signed-in person in
        data = {
            "id": user.pk,
            "username": user.username,
            "email": user.email,
            "role": user.role,
            "senders": list(sender_grants_for(user=user).values_list("number", flat=True)),
        }
        return Response(MeSerializer(data).data)
